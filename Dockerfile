# kpi-monitor worker / simulator image: `docker compose up` builds it from this checkout.
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

# The worker keeps local table data in its working directory: one the user can write.
USER kpi
WORKDIR /home/kpi
EXPOSE 6066
CMD ["kpi-monitor", "worker"]
