# One image for every jobyard process; compose.yaml picks the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY api api
COPY workers workers
COPY backends backends
COPY schemas schemas
COPY store store
COPY jobyard jobyard
COPY workloads workloads
RUN pip install --no-cache-dir .
ENV JOBYARD_HOST=0.0.0.0 JOBYARD_DATA_DIR=/data
VOLUME /data
EXPOSE 8000
CMD ["jobyard", "api"]
