# The ingestor image used by docker-compose.yml.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ingestor

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/ingestor /usr/local/bin/ingestor
USER 65534
ENTRYPOINT ["ingestor"]
CMD ["run", "--config", "/etc/ethhook/ingestor.toml"]
