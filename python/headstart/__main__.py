"""``python -m headstart init ...``: the same as the ``headstart`` command."""

from ._cli import main

raise SystemExit(main())
