"""`python -m service`: the `study-register` command line."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="study-register")
