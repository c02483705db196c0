/**
 * Follows an access log by its path, like `tail -F`, for the agent's traffic rates (issue 14, §3), without losing
 * or repeating a line across a rotation or a restart of the agent.
 *
 * - Rotation by rename (logrotate's default, `mv access.log access.log.1` then a reopen): the old inode is read to
 *   its end and kept open until it has been quiet for `drainMs` (a server writes to it until it reopens its log),
 *   then the new file is read from its start.
 * - Rotation by truncation (`copytruncate`): the file is the same inode but shorter than the offset: read it again
 *   from the start. Lines written between logrotate's copy and its truncation are in the copy only; like every
 *   reader of a copytruncated log we cannot see them (logrotate's own caveat).
 * - Restart: the position (device, inode and byte offset of every file still being read) is a plain value the
 *   caller persists together with what it counted (see traffic.ts); a new tailer resumes from it, also when the file
 *   was rotated meanwhile: the old inode is looked for among the files next to the log (access.log.1,
 *   access.log-20261203) and read to its end first.
 *
 * Only complete lines are returned: the offset stays before a line that has no newline yet, except at the end of a
 * rotated file that went quiet (its writer will not finish it).
 */
import { constants } from 'node:fs';
import { type FileHandle, open, readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface TailPosition {
  readonly dev: number;
  readonly ino: number;
  readonly offset: number;
}

/** What a tailer persists: the file at the path and the rotated ones still being read. */
export interface TailerState {
  readonly current?: TailPosition;
  readonly draining: readonly TailPosition[];
}

export interface LogTailerOptions {
  /** How long a rotated file must stay quiet before it is closed (default 5000 ms). */
  readonly drainMs?: number;
  /** Bytes read at most per poll and file (default 64 MiB): a huge backlog is read over several polls. */
  readonly maxBytesPerPoll?: number;
  readonly log?: (line: string) => void;
}

interface OpenFile {
  fh: FileHandle;
  dev: number;
  ino: number;
  offset: number;
  /** When a rotated file last grew (draining files only). */
  lastGrowth: number;
}

const CHUNK = 1 << 20;
/** A "line" longer than this without a newline is cut (a binary file, a runaway writer). */
const MAX_LINE = 1 << 20;

export class LogTailer {
  private current: OpenFile | undefined;
  private draining: OpenFile[] = [];
  private started = false;
  private readonly log: (line: string) => void;

  constructor(
    readonly path: string,
    private saved: TailerState | undefined,
    private readonly o: LogTailerOptions = {},
  ) {
    this.log = o.log ?? (() => {});
  }

  private async openAt(path: string, at: 'start' | 'end' | number, now: number): Promise<OpenFile | undefined> {
    let fh: FileHandle;
    try {
      fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    const st = await fh.stat();
    const offset = at === 'start' ? 0 : at === 'end' ? st.size : at > st.size ? 0 : at;
    return { fh, dev: st.dev, ino: st.ino, offset, lastGrowth: now };
  }

  /** The first poll: resume from the saved position, or start at the end of the file (what is there is history). */
  private async start(now: number): Promise<void> {
    this.started = true;
    const saved = this.saved;
    this.saved = undefined;
    if (!saved) {
      this.current = await this.openAt(this.path, 'end', now);
      if (this.current) this.log(`${this.path}: following from its end (byte ${this.current.offset})`);
      return;
    }
    const atPath = await stat(this.path).catch(() => undefined);
    const lost: TailPosition[] = [];
    for (const p of [...saved.draining, ...(saved.current ? [saved.current] : [])]) {
      if (atPath && atPath.dev === p.dev && atPath.ino === p.ino) continue;
      const found = await this.findRotated(p);
      if (found) {
        const f = await this.openAt(found, p.offset, now);
        if (f && f.ino === p.ino) {
          this.draining.push(f);
          this.log(`${this.path}: reading ${found} (rotated while the agent was away) from byte ${f.offset}`);
          continue;
        }
        await f?.fh.close();
      }
      lost.push(p);
    }
    if (lost.length > 0) {
      this.log(
        `${this.path}: a rotated file the agent was reading is gone (inode ${lost.map((p) => p.ino).join(', ')}): lines written to it after byte ${lost.map((p) => p.offset).join(', ')} were not counted`,
      );
    }
    const cur = saved.current;
    if (atPath && cur && atPath.dev === cur.dev && atPath.ino === cur.ino) {
      this.current = await this.openAt(this.path, cur.offset, now);
      if (this.current && this.current.offset < cur.offset) {
        this.log(`${this.path}: truncated while the agent was away: reading it from the start`);
      }
    } else {
      // A new file (rotated meanwhile, or first created): all of it is new.
      this.current = await this.openAt(this.path, 'start', now);
    }
  }

  /** The file next to the log with this inode (a rotated log keeps its inode when renamed), if any. */
  private async findRotated(p: TailPosition): Promise<string | undefined> {
    const dir = dirname(this.path);
    const base = basename(this.path);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return undefined;
    }
    for (const name of names) {
      if (!name.startsWith(base) && !name.startsWith(base.replace(/\.log$/, ''))) continue;
      const st = await stat(join(dir, name)).catch(() => undefined);
      if (st?.isFile() && st.dev === p.dev && st.ino === p.ino) return join(dir, name);
    }
    return undefined;
  }

  /**
   * Reads complete lines from `f.offset`, up to `maxBytesPerPoll`; with `final`, a last line without its newline is
   * returned too. Advances the offset past what it returns.
   */
  private async readLines(f: OpenFile, out: string[], final: boolean): Promise<number> {
    const limit = this.o.maxBytesPerPoll ?? 64 * CHUNK;
    let total = 0;
    let pending: Buffer = Buffer.alloc(0);
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      if (total >= limit) break;
      const { bytesRead } = await f.fh.read(buf, 0, CHUNK, f.offset + pending.length);
      if (bytesRead === 0) break;
      total += bytesRead;
      let data = pending.length > 0 ? Buffer.concat([pending, buf.subarray(0, bytesRead)]) : buf.subarray(0, bytesRead);
      let from = 0;
      for (;;) {
        const nl = data.indexOf(10, from);
        if (nl < 0) break;
        out.push(data.toString('utf8', from, nl));
        from = nl + 1;
      }
      f.offset += from;
      data = data.subarray(from);
      if (data.length >= MAX_LINE) {
        out.push(data.toString('utf8'));
        f.offset += data.length;
        data = Buffer.alloc(0);
      }
      pending = Buffer.from(data);
      if (bytesRead < CHUNK) break;
    }
    if (final && pending.length > 0) {
      out.push(pending.toString('utf8'));
      f.offset += pending.length;
    }
    return total;
  }

  /** The complete lines written since the last poll, oldest file first. */
  async poll(now: number): Promise<string[]> {
    if (!this.started) await this.start(now);
    const lines: string[] = [];
    for (const f of [...this.draining]) {
      const before = f.offset;
      await this.readLines(f, lines, false);
      if (f.offset > before) f.lastGrowth = now;
      else if (now - f.lastGrowth >= (this.o.drainMs ?? 5000)) {
        await this.readLines(f, lines, true);
        await f.fh.close();
        this.draining.splice(this.draining.indexOf(f), 1);
      }
    }
    const atPath = await stat(this.path).catch(() => undefined);
    if (!this.current) {
      // The log did not exist: whatever appears now is new.
      if (atPath) this.current = await this.openAt(this.path, 'start', now);
    } else if (atPath && (atPath.dev !== this.current.dev || atPath.ino !== this.current.ino)) {
      // Renamed away and a new file at the path: finish the old one first, keep it open until it goes quiet.
      await this.readLines(this.current, lines, false);
      this.current.lastGrowth = now;
      this.draining.push(this.current);
      this.log(`${this.path}: rotated (a new file at the path): reading the new one from its start`);
      this.current = await this.openAt(this.path, 'start', now);
    } else {
      const st = await this.current.fh.stat();
      if (st.size < this.current.offset) {
        this.log(`${this.path}: truncated (copytruncate): reading it again from the start`);
        this.current.offset = 0;
      }
    }
    if (this.current) await this.readLines(this.current, lines, false);
    return lines;
  }

  /** Whether a file is being read (false while the log does not exist). */
  following(): boolean {
    return this.current !== undefined || this.draining.length > 0;
  }

  /** The position to persist (with what the lines returned so far were counted into). */
  state(): TailerState {
    if (!this.started && this.saved) return this.saved;
    const pos = (f: OpenFile): TailPosition => ({ dev: f.dev, ino: f.ino, offset: f.offset });
    return { ...(this.current ? { current: pos(this.current) } : {}), draining: this.draining.map(pos) };
  }

  async close(): Promise<void> {
    for (const f of [...this.draining, ...(this.current ? [this.current] : [])]) await f.fh.close().catch(() => {});
    this.draining = [];
    this.current = undefined;
  }
}
