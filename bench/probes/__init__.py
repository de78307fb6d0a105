"""Programs `make bench` runs each in a process of its own, so that a figure (peak memory above all) is theirs
alone and nothing the bench imported before leaks into it: `python -m bench.probes.NAME ARGS`."""
