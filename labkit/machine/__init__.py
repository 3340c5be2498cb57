"""What this machine has: probes that find each tool, engine, device and credential (probes),
the one table of capabilities built on them (capabilities), the doctor that prints it
(doctor), and the base images the labs build FROM (images). Imports only labkit.core."""
