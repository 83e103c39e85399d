# A notebook (and batch job) image with the `gpupool` CLI and the JupyterLab
# panel. Start from your lab's own image (CUDA, frameworks) instead of
# base-notebook; the pool gives containers their GPUs through the NVIDIA
# container toolkit, so the image needs no driver.
#
#   docker build -f helm/images/notebook.Dockerfile -t jupyterhub-gpupool-notebook:0.1.0 .
ARG BASE=quay.io/jupyter/base-notebook:latest
FROM ${BASE}
USER root
COPY --chown=1000:100 . /tmp/jupyterhub-gpupool
RUN python3 -m pip install --no-cache-dir "/tmp/jupyterhub-gpupool[lab]" \
 && rm -rf /tmp/jupyterhub-gpupool
USER 1000
