# One image for every service; the command picks which (python -m services.<name>).
# It carries no Redis: docker-compose.yml runs the real Redis image. Every dependency has wheels
# for amd64 and arm64 (Apple Silicon), so the image builds without a compiler on either.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY protos ./protos
COPY gen ./gen
COPY services ./services
COPY config ./config
RUN pip install --no-cache-dir .
ENV GONGJI_LISTEN_ADDR=0.0.0.0:50051
EXPOSE 50051
CMD ["python", "-m", "services.account"]
