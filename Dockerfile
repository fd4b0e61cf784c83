# Contoso Chat HTTP service. Build from the repository root:
#   docker build -t contoso-chat .
#   docker run --rm -p 8000:8000 --env-file .env contoso-chat
# The image serves the API and the chat page on port 8000. Point it at Azure OpenAI, Azure AI
# Search and Cosmos DB through the environment (see .env.sample); with no settings it runs the
# bundled local model inside the container (slow, but complete).
FROM python:3.11.10-slim-bookworm

# llama-cpp-python compiles from source: a C++ toolchain and CMake are needed at build time only.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt pyproject.toml README.md ./
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install --no-cache-dir -r requirements.txt
COPY contoso_chat ./contoso_chat
COPY data ./data
RUN pip install --no-cache-dir --no-deps . \
    && useradd --create-home --uid 10001 contoso \
    && mkdir -p /app/build && chown contoso /app/build

USER contoso
ENV CONTOSO_DATA_DIR=/app/data \
    CONTOSO_BUILD_DIR=/app/build \
    HF_HUB_OFFLINE=1 \
    PYTHONUNBUFFERED=1
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=120s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"
# Inside a container the service must listen on all interfaces so the published port reaches it.
CMD ["python", "-m", "uvicorn", "contoso_chat.serving.api:app_from_environment", "--factory", "--host", "0.0.0.0", "--port", "8000"]
