/**
 * With SMGW_BLOB_DIR, a blob of at most this many bytes (a notice, most messages) is kept in the database all the
 * same: its one chunk goes into the statement that commits its row anyway, where a file costs a create, a write, two
 * syncs (content and folder) and a rename on top of that commit, and a reader opens, reads and closes it. Measured on
 * our 2-core VMs (put and read back, whole machine's CPU): 3 KB 1.0–1.35 ms in the database against 2.4–4.0 ms in
 * files; 10 KB, 4 at a time, 1.4–1.6 against 1.9–3.6 ms. Larger blobs go to files: there the bytes themselves
 * dominate, and PostgreSQL would carry them twice (table and WAL).
 */
export const SMALL_BLOB_BYTES = 16 * 1024;
