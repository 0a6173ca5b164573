# kpi-monitor worker / simulator image: `docker compose up` builds it from this checkout.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

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
