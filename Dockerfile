# One image for every jobyard process; compose.yaml picks the command. The source tree's
# jobyard/ links to the top-level packages; the wheel holds them under jobyard/ only.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY api api
COPY workers workers
COPY backends backends
COPY schemas schemas
COPY store store
COPY workloads workloads
COPY jobyard jobyard
# the images extra: the reference workload's convert/validate read folders of images
RUN pip install --no-cache-dir ".[images]" && rm -rf /app/*
ENV JOBYARD_HOST=0.0.0.0 JOBYARD_DATA_DIR=/data
VOLUME /data
EXPOSE 8000
CMD ["jobyard", "api"]
