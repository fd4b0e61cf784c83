"""`python -m contoso_chat.evaluation`: evaluate a variant on the evaluation set (see contoso_chat.evaluation.run)."""

import sys

from contoso_chat.evaluation.run import main

sys.exit(main())
