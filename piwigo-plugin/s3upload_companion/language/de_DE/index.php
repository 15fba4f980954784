<?php
// No directory listing: send visitors to the parent directory.
$url = dirname($_SERVER['PHP_SELF'], 2) . '/';
header('Location: ' . $url);
exit;
