#!/usr/bin/env node
// The `paycode` executable: registers the TypeScript loader, then runs the CLI.
import { register } from 'tsx/esm/api';

register();
await import('./paycode.ts');
