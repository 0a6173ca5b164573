# kpi-monitor worker / simulator image: `docker compose up` builds it from this checkout.

# Stage 1: the compiled KPI core (kpi_core's hot modules through mypyc), built from these sources
# with a C compiler and mypy that the final image does not carry.
FROM python:3.11-slim AS core

ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY kpi_core ./kpi_core
COPY kpi_rules ./kpi_rules
COPY streams ./streams
COPY kpi_monitor ./kpi_monitor
# The same install as the final stage (same site-packages, so the build matches its sources).
RUN pip install . "mypy>=1.10" setuptools \
    && python -m kpi_monitor.compiled_core build

# Stage 2: the image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# `kpi-monitor report|digest --format pdf` lays out pages with Pango (WeasyPrint); zh-CN reports
# draw Chinese with Noto Sans CJK SC.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*

# Sources only (no .venv, .kpi-dev or .git from the build context).
COPY pyproject.toml README.md ./
COPY kpi_core ./kpi_core
COPY kpi_rules ./kpi_rules
COPY streams ./streams
COPY kpi_monitor ./kpi_monitor
RUN pip install . \
    && useradd --create-home --shell /usr/sbin/nologin kpi
# The compiled core of stage 1, where `kpi-monitor` looks for it (<sys.prefix>/kpi-core-compiled);
# `python -m kpi_monitor.compiled_core status` checks that it matches the installed sources.
COPY --from=core /usr/local/kpi-core-compiled /usr/local/kpi-core-compiled
RUN python -m kpi_monitor.compiled_core status

# The worker keeps local table data in its working directory: one the user can write.
USER kpi
WORKDIR /home/kpi
EXPOSE 6066
CMD ["kpi-monitor", "worker"]
