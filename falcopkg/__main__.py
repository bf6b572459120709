from __future__ import annotations

from falcopkg.cli.main import main

if __name__ == "__main__":
    main()
