"""`python -m gateway.local connect|router …`: the same command as the `mcp-gateway` console script."""
from .cli import main

raise SystemExit(main())
