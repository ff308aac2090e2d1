import sys

from lv2_env.cli.main import main

sys.exit(main())
