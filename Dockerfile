# The Forewarn image: the `forewarn` CLI and its runtime dependencies, nothing else.
# Used by docker-compose.yml for `forewarn db migrate`, `forewarn ingest` and `forewarn simulate`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed, unprivileged user; its home is the working directory, so the default
# FOREWARN_DATA_DIR (.forewarn) and a .env file, if mounted, resolve there.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/forewarn \
        --shell /usr/sbin/nologin forewarn

# Install the project (runtime dependencies only, no dev extras) from the build
# context, then drop the sources: the installed package is all that runs.
COPY . /tmp/forewarn-src
RUN pip install /tmp/forewarn-src && rm -rf /tmp/forewarn-src

USER forewarn
WORKDIR /home/forewarn

ENTRYPOINT ["forewarn"]
CMD ["--help"]
