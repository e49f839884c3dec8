/** cnm's version, printed by `cnmd --version`, `cnm version` and `/version`. */
export const VERSION = '0.1.0';
