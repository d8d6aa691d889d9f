/**
 * Opens a SQLite database durable by default (WAL, synchronous=FULL) and applies its
 * numbered migrations from db/ in order, recording each in schema_migrations.
 */
import Database from 'better-sqlite3';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export type Db = Database.Database;
export type DbName = 'core' | 'channel' | 'log';
export type Synchronous = 'FULL' | 'NORMAL' | 'OFF';

const migrationsDir = fileURLToPath(new URL('../../db/', import.meta.url));

/** `path` ':memory:' gives a throwaway database (tests and the simulator). */
export function openDatabase(path: string, name: DbName, synchronous: Synchronous = 'FULL'): Db {
  const db = new Database(path);
  if (path !== ':memory:') db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db, name);
  return db;
}

function migrate(db: Db, name: DbName): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT');
  const applied = new Set(
    db.prepare('SELECT version FROM schema_migrations').pluck().all() as string[],
  );
  const files = readdirSync(migrationsDir)
    .filter((f) => /^\d{3}-/.test(f) && f.endsWith('.sql') && f.split(/[-.]/)[1] === name)
    .sort();
  const record = db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)');
  for (const file of files) {
    if (applied.has(file)) continue;
    const sql = readFileSync(join(migrationsDir, file), 'utf8');
    db.transaction(() => {
      db.exec(sql);
      record.run(file, Date.now());
    })();
  }
}
