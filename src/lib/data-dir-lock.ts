/**
 * One bank per data directory: a process holds an exclusive SQLite lock on DATA_DIR/bank.lock
 * for as long as it runs, so a second process on the same directory stops before it opens,
 * restores or sends anything. The operating system lets the lock go when the process dies.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';

export const LOCK_FILE = 'bank.lock';

export class DataDirBusy extends Error {
  override name = 'DataDirBusy';
}

/** Takes the directory's lock, or throws DataDirBusy; the returned function lets it go. */
export function lockDataDir(dataDir: string): () => void {
  const db = new Database(join(dataDir, LOCK_FILE), { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    // The first write in exclusive mode takes the lock and keeps it until the connection closes.
    db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER); DELETE FROM holder;');
    db.prepare('INSERT INTO holder (pid) VALUES (?)').run(process.pid);
  } catch (error) {
    db.close();
    if (error instanceof Error && 'code' in error && error.code === 'SQLITE_BUSY') {
      throw new DataDirBusy(`DATA_DIR ${dataDir} is in use by another scrollbank process`);
    }
    throw error;
  }
  return () => db.close();
}
