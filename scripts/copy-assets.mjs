#!/usr/bin/env node
// Copies the files tsc does not emit (the dashboard page) from src/ to dist/, at the same
// relative paths, so modules find them next to themselves in both layouts.
import { cpSync } from 'node:fs';

const ASSETS = ['server/dashboard'];

for (const asset of ASSETS) {
  cpSync(
    new URL(`../src/${asset}`, import.meta.url),
    new URL(`../dist/${asset}`, import.meta.url),
    {
      recursive: true,
    },
  );
}
