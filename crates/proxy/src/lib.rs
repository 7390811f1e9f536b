//! The data plane: an HTTP/1.1 + h2c reverse proxy reading an atomically swapped route table.
