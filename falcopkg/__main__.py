from __future__ import annotations

from falcopkg.entry import main

if __name__ == "__main__":
    main()
