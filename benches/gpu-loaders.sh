# Sourced by the scripts for a lent GPU machine (gpu-card.sh, gpu-study.sh): unpacks the carried
# Vulkan/EGL loaders (.gl/*.deb; the machine has the NVIDIA driver, not the loader) and points
# the loader at the driver. Does nothing on a machine without the card.
if command -v nvidia-smi >/dev/null; then  # never unpack loaders into a machine without the card
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,utilization.gpu --format=csv
fi
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
