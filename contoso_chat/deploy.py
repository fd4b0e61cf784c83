"""`python -m contoso_chat.deploy`: create the Azure ML endpoint from measured figures (opt-in, paid).

Start-up time and p95 latency come from the last `make bench` run when present
(build/bench/service.json), otherwise from conservative defaults.
"""

import json
import sys

from contoso_chat import deployment
from contoso_chat.config import ConfigError, load_settings
from contoso_chat.paths import build_dir

DEFAULT_STARTUP_S = 60.0
DEFAULT_P95_S = 10.0


def main() -> int:
    settings = load_settings()
    measured = build_dir() / "bench" / "service.json"
    figures = json.loads(measured.read_text()) if measured.exists() else {}
    endpoint, blue = deployment.build_endpoint(settings, figures.get("startup_s", DEFAULT_STARTUP_S),
                                               figures.get("p95_s", DEFAULT_P95_S))
    print(deployment.endpoint_yaml(endpoint, blue))
    try:
        deployment.deploy(settings, endpoint, blue)
    except ConfigError as error:
        print(f"Not deployed: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
