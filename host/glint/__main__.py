import sys

from glint.cli import main

sys.exit(main())
