import { StringDecoder } from 'node:string_decoder';

/**
 * Splits a UTF-8 byte stream into lines for logging. A line longer than `maxLength` characters is emitted
 * in pieces of at most `maxLength`, so memory stays bounded; empty lines are dropped. `flush` emits a
 * final unterminated line.
 */
export class LineSplitter {
  private pending = '';
  private readonly decoder = new StringDecoder('utf8');

  constructor(
    private readonly maxLength: number,
    private readonly onLine: (line: string) => void,
  ) {}

  push(chunk: Buffer): void {
    this.pending += this.decoder.write(chunk);
    for (;;) {
      const nl = this.pending.indexOf('\n');
      if (nl === -1) break;
      this.emit(this.pending.slice(0, nl));
      this.pending = this.pending.slice(nl + 1);
    }
    while (this.pending.length > this.maxLength) {
      this.emit(this.pending.slice(0, this.maxLength));
      this.pending = this.pending.slice(this.maxLength);
    }
  }

  flush(): void {
    this.pending += this.decoder.end();
    this.emit(this.pending);
    this.pending = '';
  }

  private emit(raw: string): void {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    for (let i = 0; i < line.length; i += this.maxLength) this.onLine(line.slice(i, i + this.maxLength));
  }
}
