// The extensions the migrations create; anything opening a PGlite database of ours loads the same (client.ts, the
// database thread's server, the benchmarks' server).
import { btree_gin } from '@electric-sql/pglite/contrib/btree_gin';
import { vector } from '@electric-sql/pglite-pgvector';

export const PGLITE_EXTENSIONS = { vector, btree_gin };
