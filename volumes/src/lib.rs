//! Named volumes, bind mounts, tmpfs, secrets and configs (filled in by the volumes work).
