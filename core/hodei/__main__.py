"""`python -m hodei` is the `hodei` command."""

from hodei.cli import main

if __name__ == "__main__":
    main(prog_name="hodei")
