/**
 * The UI kit shared by the lab panel and the hub admin page: states, types,
 * formatting, the element builder and the pool grid. Compiled once (tsc, ES
 * modules) and copied to hub_ext/service/pages/static/kit/ for the admin page
 * (`jlpm build:kit`); the panel bundles it as any other module.
 */
export * from './states.js';
export * from './types.js';
export * from './format.js';
export * from './dom.js';
export * from './grid.js';
