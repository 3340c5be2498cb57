"""What this machine has: probes that find each tool, engine, device and credential (probes),
the one table of capabilities built on them (capabilities), the doctor that prints it
(doctor), the GPU doctor with NVIDIA's driver table (gpu), this CPU's measured bandwidth and
multiply rate (throughput), the GPUs' datasheet figures (accelerators), and the base images the
labs build FROM (images). Imports only labkit.core."""
