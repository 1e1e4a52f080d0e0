"""Tools of the repository, outside the installed package: set-up of the vLLM and editor
environments for tests and GPU hosts (shell scripts) and :mod:`scripts.vllm_server`, which
starts, probes and stops a CPU vLLM server."""
