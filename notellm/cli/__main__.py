"""`python -m notellm.cli ARGS` = `notellm ARGS` (for a checkout without the console script, and subprocesses)."""

from notellm.cli import main

if __name__ == "__main__":
    main()
