import sys

from tlcourse_tools.cli import main

sys.exit(main())
