"""`python -m contoso_chat.finetuning`: run a fine-tuning recipe (see contoso_chat.finetuning.recipe)."""

import sys

from contoso_chat.finetuning.recipe import main

sys.exit(main())
