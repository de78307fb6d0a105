"""Entry point of the standalone rollout binary (make binary)."""

from infer.rollout import main

if __name__ == "__main__":
    main()
