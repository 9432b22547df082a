import sys

from igcap.cli import main

sys.exit(main())
