import sys

from localenv.cli import main

sys.exit(main())
