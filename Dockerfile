# Contoso Chat serving image: the HTTP service, the chat page and the Azure ML endpoint's POST /score, on port 8000.
#   docker build -t contoso-chat .
#   docker run --rm -p 8000:8000 --env-file .env contoso-chat
# It installs requirements-serving.txt only (no notebooks, local models or build tools), so it answers with the
# cloud backends named in the environment (Azure OpenAI, Azure AI Search, Cosmos DB; see .env.sample), and it
# refuses to start without CONTOSO_API_SECRET. Azure ML builds this same file for the managed online endpoint
# (contoso_chat/azure/endpoint.py), so the container and the endpoint run one runtime.

# Stage 1: a virtual environment with the pinned serving requirements and the package.
FROM python:3.11.10-slim-bookworm AS build
WORKDIR /src
RUN python -m venv /opt/venv
COPY requirements-serving.txt ./
RUN /opt/venv/bin/pip install --no-cache-dir -r requirements-serving.txt
COPY pyproject.toml README.md ./
COPY contoso_chat ./contoso_chat
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps .

# Stage 2: the runtime, with the virtual environment and the data only.
FROM python:3.11.10-slim-bookworm AS service
RUN useradd --create-home --uid 10001 contoso
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY data ./data
RUN mkdir -p /app/build && chown contoso /app/build
USER contoso
ENV PATH=/opt/venv/bin:$PATH \
    CONTOSO_DATA_DIR=/app/data \
    CONTOSO_BUILD_DIR=/app/build \
    HF_HUB_OFFLINE=1 \
    PYTHONUNBUFFERED=1
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
# Inside a container the service listens on all interfaces so the published port (or Azure ML) reaches it.
CMD ["uvicorn", "contoso_chat.serving.azureml_scoring:app_from_environment", "--factory", "--host", "0.0.0.0", "--port", "8000"]
