import { describe, expect, it } from 'vitest';
import { LineSplitter } from '../../src/runtime/process/line-splitter.js';

function collect(maxLength: number) {
  const lines: string[] = [];
  return { lines, splitter: new LineSplitter(maxLength, (l) => lines.push(l)) };
}

describe('LineSplitter', () => {
  it('joins lines split across chunks and drops empty lines and CR', () => {
    const { lines, splitter } = collect(100);
    splitter.push(Buffer.from('hel'));
    splitter.push(Buffer.from('lo\r\n\nwor'));
    splitter.push(Buffer.from('ld\n'));
    expect(lines).toEqual(['hello', 'world']);
  });

  it('caps line length without waiting for a newline', () => {
    const { lines, splitter } = collect(4);
    splitter.push(Buffer.from('abcdefghij'));
    expect(lines).toEqual(['abcd', 'efgh']);
    splitter.push(Buffer.from('\n123456789\n'));
    expect(lines).toEqual(['abcd', 'efgh', 'ij', '1234', '5678', '9']);
  });

  it('keeps multi-byte characters split across chunks intact and flushes the tail', () => {
    const { lines, splitter } = collect(100);
    const bytes = Buffer.from('héllo');
    splitter.push(bytes.subarray(0, 2));
    splitter.push(bytes.subarray(2));
    splitter.flush();
    expect(lines).toEqual(['héllo']);
  });
});
