# The jupyterhub-gpupool image: the hub (Z2JH's k8s-hub plus this project),
# the pool service and the node agent all run from it.
#
#   docker build -f helm/images/hub.Dockerfile -t jupyterhub-gpupool:0.1.0 .    # from the repository root
ARG BASE=quay.io/jupyterhub/k8s-hub:4.2.0
FROM ${BASE}
USER root
COPY --chown=1000:1000 . /tmp/jupyterhub-gpupool
RUN python3 -m pip install --no-cache-dir "/tmp/jupyterhub-gpupool[kubernetes,postgres]" \
 && rm -rf /tmp/jupyterhub-gpupool
USER 1000
