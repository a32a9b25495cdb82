import { timestamp } from 'drizzle-orm/pg-core';

/** A `timestamptz` column read and written as a JS `Date`: the one timestamp shape every table uses. */
export const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });
