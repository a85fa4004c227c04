"""`python -m tokendistill`: the same as the `tokendistill` command."""

from tokendistill.cli import main

raise SystemExit(main())
