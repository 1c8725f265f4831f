import sys

from atlaskit.cli import main

sys.exit(main())
