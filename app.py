"""The ZEAL annotation assistant: `python app.py` (or `make app`) serves it on http://127.0.0.1:7860.
The app itself lives in zeal_ui/app.py (installed as the `zeal-app` command); `python app.py --help`
lists its flags."""

import sys

from zeal_ui.app import main

if __name__ == "__main__":
    sys.exit(main())
