# The ingestor image used by docker-compose.yml. It also carries `devstack`, whose
# `traffic` subcommand is the compose stack's traffic source.
FROM rust:1.95-bookworm AS build
# cmake and perl: librdkafka and the OpenSSL it is built with (vendored).
RUN apt-get update && apt-get install -y --no-install-recommends cmake perl && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ingestor -p devstack

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/ingestor /usr/local/bin/ingestor
COPY --from=build /src/target/release/devstack /usr/local/bin/devstack
USER 65534
ENTRYPOINT ["ingestor"]
CMD ["run", "--config", "/etc/ethhook/ingestor.toml"]
