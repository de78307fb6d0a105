"""`make bench`: speed and memory as ratios against baselines run in the same process."""
